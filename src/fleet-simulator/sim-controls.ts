import { z } from 'zod';

/**
 * The knobs a test or an operator turns at run time through /_sim/config. They live in memory only:
 * a restart goes back to the values from the environment, so a forgotten fault does not survive it.
 */
export const SIM_FAULTS = ['none', 'http_500', 'timeout'] as const;

export const SimControlsSchema = z.strictObject({
  boot_ms: z.int().min(0).max(3_600_000),
  failure_rate: z.number().min(0).max(1),
  latency_ms: z.int().min(0).max(600_000),
  fault: z.enum(SIM_FAULTS),
  refused_images: z.array(z.string().min(1)).max(1000),
});
export type SimControlsValues = z.infer<typeof SimControlsSchema>;

/** PUT /_sim/config: fields left out keep their value. */
export const SimControlsPatchSchema = SimControlsSchema.partial();
export type SimControlsPatch = z.infer<typeof SimControlsPatchSchema>;

export interface SimControls {
  get(): Readonly<SimControlsValues>;
  update(patch: SimControlsPatch): Readonly<SimControlsValues>;
}

export function createSimControls(initial: SimControlsValues): SimControls {
  let current: Readonly<SimControlsValues> = Object.freeze({ ...initial, refused_images: [...initial.refused_images] });
  return {
    get: () => current,
    update(patch) {
      current = Object.freeze({ ...current, ...patch });
      return current;
    },
  };
}
