/** Bounds that may exclude their ends; an excluded one is OpenAPI's exclusiveMinimum/Maximum. */
export interface NumberBounds {
  min: number;
  minExcluded?: boolean | undefined;
  max: number;
  maxExcluded?: boolean | undefined;
}

/** "greater than 0 and at most 1" */
export function boundsText(bounds: NumberBounds): string {
  return `${bounds.minExcluded ? 'greater than' : 'at least'} ${bounds.min} and ${bounds.maxExcluded ? 'less than' : 'at most'} ${bounds.max}`;
}

export function withinBounds(bounds: NumberBounds, value: number): boolean {
  return (bounds.minExcluded ? value > bounds.min : value >= bounds.min) && (bounds.maxExcluded ? value < bounds.max : value <= bounds.max);
}
