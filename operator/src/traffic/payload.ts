import type { LoadExperiment } from '../schema/load-experiment.js';
import { hash32, unit } from './hash.js';

/** The body of POST /v1/measurements for one reading (api/src/measurements/measurement.schema.ts). */
export interface Measurement {
  deviceTime: string;
  chargeNow: number;
  chargeFull: number;
  chargeRate: number;
  ambientTemp: number;
  waterTemp: number;
  waterLevel: number;
}

type FleetSettings = Pick<LoadExperiment['spec']['fleet'], 'seed' | 'serialPrefix' | 'realism'>;
type WithFleet = { spec: { fleet: FleetSettings } };

/** Serials are zero-padded to 8 digits, enough for the schema's 10,000,000 devices, so they sort. */
const SERIAL_DIGITS = 8;

/**
 * The serial a device logs in with. The seed is part of it so experiments with different seeds
 * that keep the database (database.mode keep) do not share devices.
 */
export function deviceSerial(experiment: WithFleet, index: number): string {
  const { serialPrefix, seed } = experiment.spec.fleet;
  return `${serialPrefix}-${seed}-${String(index).padStart(SERIAL_DIGITS, '0')}`;
}

/** Readings when realism is off: one plausible kettle, the same for every device and time. */
const CONSTANT_READING = { chargeNow: 240, chargeFull: 300, chargeRate: 0, ambientTemp: 21, waterTemp: 21, waterLevel: 1 };

/**
 * What device `device` reports at `deviceTime` (a Date or epoch milliseconds): a pure function of
 * (seed, device, time), always inside the API's ranges, with chargeNow <= chargeFull.
 *
 * Realism without per-device state: each quantity is a piecewise-linear or exponential cycle
 * whose period, phase and per-cycle levels are hashed from (seed, device, cycle number), plus a
 * little hashed noise per minute. Per-cycle levels join end to start, so a device's battery and
 * reservoir move continuously instead of jumping between readings.
 */
export function measurementPayload(experiment: WithFleet, device: number, deviceTime: Date | number): Measurement {
  const epochMs = typeof deviceTime === 'number' ? deviceTime : deviceTime.getTime();
  const iso = new Date(epochMs).toISOString();
  const { seed, realism } = experiment.spec.fleet;
  if (!realism.enabled) return { deviceTime: iso, ...CONSTANT_READING };
  const hours = epochMs / 3_600_000;
  const minute = Math.floor(epochMs / 60_000);
  const ambientTemp = ambient(seed, device, hours, minute);
  const battery = batteryAt(seed, device, hours, minute);
  const water = waterAt(seed, device, hours, ambientTemp);
  return {
    deviceTime: iso,
    chargeNow: battery.chargeNow,
    chargeFull: battery.chargeFull,
    chargeRate: battery.chargeRate,
    ambientTemp: round(clamp(ambientTemp, -50, 70), 1),
    waterTemp: round(clamp(water.temp, -20, 110), 1),
    waterLevel: round(clamp(water.level, 0, 20), 3),
  };
}

// Distinct salts keep the walks of one device independent of each other.
const SALT = { battery: 1, batteryCycle: 2, water: 3, waterCycle: 4, ambient: 5, chargeNoise: 6, rateNoise: 7, ambientNoise: 8 } as const;

/** Device constant i of a walk, uniform in [0, 1). */
function trait(seed: number, salt: number, device: number, i: number): number {
  return unit(seed, salt, device, i);
}

/** Which cycle a time falls in and how far into it (0..1), for a hashed period and phase. */
function cycle(hours: number, periodH: number, phase: number): { index: number; progress: number } {
  const position = hours / periodH + phase;
  const index = Math.floor(position);
  return { index, progress: position - index };
}

/** A battery of 200-400 Wh that drains for most of an 8-24 h cycle and then recharges. */
function batteryAt(seed: number, device: number, hours: number, minute: number) {
  const chargeFull = round(200 + 200 * trait(seed, SALT.battery, device, 0), 1);
  const periodH = 8 + 16 * trait(seed, SALT.battery, device, 1);
  const { index, progress } = cycle(hours, periodH, trait(seed, SALT.battery, device, 2));
  // Per cycle: full level at the start, empty level, and the share of the cycle spent draining.
  const top = (c: number) => 0.85 + 0.15 * unit(seed, SALT.batteryCycle, device, hash32(c, 0));
  const bottom = 0.1 + 0.25 * unit(seed, SALT.batteryCycle, device, hash32(index, 1));
  const drainShare = 0.65 + 0.2 * unit(seed, SALT.batteryCycle, device, hash32(index, 2));
  let level: number;
  let slopePerH: number;
  if (progress < drainShare) {
    slopePerH = (bottom - top(index)) / (drainShare * periodH);
    level = top(index) + slopePerH * progress * periodH;
  } else {
    slopePerH = (top(index + 1) - bottom) / ((1 - drainShare) * periodH);
    level = bottom + slopePerH * (progress - drainShare) * periodH;
  }
  const noise = 0.004 * (unit(seed, SALT.chargeNoise, device, minute) - 0.5);
  const chargeNow = Math.min(chargeFull, round(clamp(level + noise, 0, 1) * chargeFull, 2));
  const chargeRate = round(clamp(slopePerH * chargeFull * (1 + 0.1 * (unit(seed, SALT.rateNoise, device, minute) - 0.5)), -10_000, 10_000), 2);
  return { chargeNow, chargeFull, chargeRate };
}

/**
 * A reservoir of 1-1.7 litres on a 1.5-6 h cycle: filled from the tap at the start, boiled, then
 * drawn down cup by cup (linearly) to a residue that stays until the next fill. The water heats
 * to 100 °C in a few minutes after the fill and cools toward the room afterwards.
 */
function waterAt(seed: number, device: number, hours: number, ambientTemp: number) {
  const capacity = 1 + 0.7 * trait(seed, SALT.water, device, 0);
  const periodH = 1.5 + 4.5 * trait(seed, SALT.water, device, 1);
  const { index, progress } = cycle(hours, periodH, trait(seed, SALT.water, device, 2));
  const residue = (c: number) => capacity * 0.1 * unit(seed, SALT.waterCycle, device, hash32(c, 0));
  const filled = capacity * (0.6 + 0.4 * unit(seed, SALT.waterCycle, device, hash32(index, 1)));
  const fillEnd = 0.02;
  const drawEnd = 0.7;
  let level: number;
  if (progress < fillEnd) level = residue(index) + (filled - residue(index)) * (progress / fillEnd);
  else if (progress < drawEnd) level = filled - (filled - residue(index + 1)) * ((progress - fillEnd) / (drawEnd - fillEnd));
  else level = residue(index + 1);

  const tapTemp = 8 + 10 * trait(seed, SALT.water, device, 3);
  const heatH = (4 + 2 * trait(seed, SALT.water, device, 4)) / 60;
  const coolH = 0.5 + trait(seed, SALT.water, device, 5);
  const sinceFillH = (progress - fillEnd) * periodH;
  let temp: number;
  if (sinceFillH < 0) temp = tapTemp; // filling with tap water
  else if (sinceFillH < heatH) temp = tapTemp + (100 - tapTemp) * (sinceFillH / heatH);
  else temp = ambientTemp + (100 - ambientTemp) * Math.exp(-(sinceFillH - heatH) / coolH);
  return { level, temp };
}

/** A room of 18-23 °C that is 1-3 °C warmer in the afternoon than at night (UTC hours). */
function ambient(seed: number, device: number, hours: number, minute: number): number {
  const base = 18 + 5 * trait(seed, SALT.ambient, device, 0);
  const swing = 1 + 2 * trait(seed, SALT.ambient, device, 1);
  const peakHour = 14 + 3 * trait(seed, SALT.ambient, device, 2);
  const daily = Math.cos((2 * Math.PI * (hours - peakHour)) / 24);
  return base + swing * daily + 0.4 * (unit(seed, SALT.ambientNoise, device, minute) - 0.5);
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, value));
}

function round(value: number, decimals: number): number {
  const scale = 10 ** decimals;
  return Math.round(value * scale) / scale;
}
