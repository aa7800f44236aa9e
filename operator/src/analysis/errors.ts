/**
 * The analysis was asked something it cannot answer: an empty or disordered timeline, an SLO out
 * of range, too few points for a fit. The caller's input is wrong (a user's run fails with a
 * message naming it); a bug in the analysis stays an ordinary error and is not reported as bad input.
 */
export class AnalysisInputError extends Error {
  override name = 'AnalysisInputError';
}
