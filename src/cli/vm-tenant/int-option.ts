import { InvalidArgumentError } from 'commander';
import { positiveInt } from './command-context';

/** A commander option parser for a positive whole number; a bad value is a usage error (exit 2). */
export function intOption(value: string): number {
  try {
    return positiveInt(value);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
}
