export type Env = Record<string, string | undefined>;

/**
 * Readers of environment variables that fail fast with a message naming the variable, each
 * program raising its own error type (ConfigError, SimulatorConfigError). Pure: a file a variable
 * names is checked by src/connections/readable-file.ts.
 */
export function envReaders(fail: (message: string) => Error) {
  return {
    str(env: Env, key: string, fallback: string): string {
      const value = env[key];
      return value === undefined || value === '' ? fallback : value;
    },
    int(env: Env, key: string, fallback: number, min: number, max: number): number {
      const raw = env[key];
      if (raw === undefined || raw === '') return fallback;
      if (!/^\d+$/.test(raw)) throw fail(`${key} must be a whole number, got ${JSON.stringify(raw)}`);
      const value = Number(raw);
      if (value < min || value > max) throw fail(`${key} must be between ${min} and ${max}, got ${value}`);
      return value;
    },
  };
}
