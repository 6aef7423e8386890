export type OutputFormat = 'json' | 'table';

export interface Printer {
  /** One record (json: one pretty document; table: field / value lines). */
  record(value: Record<string, unknown>): void;
  /** Rows of a listing (json: one JSON line each; table: aligned columns). */
  rows(rows: Array<Record<string, unknown>>, columns: readonly string[]): void;
  /** Progress and notes, on stderr so stdout stays machine-readable. */
  note(message: string): void;
}

function cell(value: unknown): string {
  if (value === null || value === undefined) return '-';
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  return rows.map((row) => row.map((value, i) => (i === row.length - 1 ? value : value.padEnd(widths[i]!))).join('  ')).join('\n');
}

export function createPrinter(
  format: OutputFormat,
  out: (text: string) => void = (t) => process.stdout.write(t),
  err: (text: string) => void = (t) => process.stderr.write(t),
): Printer {
  return {
    record(value) {
      if (format === 'json') out(`${JSON.stringify(value, null, 2)}\n`);
      else out(`${table(Object.entries(value).map(([key, v]) => [key, cell(v)]))}\n`);
    },
    rows(rows, columns) {
      if (format === 'json') {
        for (const row of rows) out(`${JSON.stringify(row)}\n`);
        return;
      }
      out(`${table([columns.map((c) => c.toUpperCase()), ...rows.map((row) => columns.map((c) => cell(row[c])))])}\n`);
    },
    note(message) {
      err(`${message}\n`);
    },
  };
}
