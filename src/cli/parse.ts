import { InvalidArgumentError } from 'commander';

/** A commander argument parser for whole numbers ≥ 1, with the option named in the message. */
export function parsePositiveInt(option: string): (value: string) => number {
  return (value: string) => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1) {
      throw new InvalidArgumentError(`${option} expects a whole number ≥ 1, got "${value}"`);
    }
    return n;
  };
}
