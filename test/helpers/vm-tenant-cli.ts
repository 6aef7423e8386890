import { execFile } from 'node:child_process';
import path from 'node:path';

const BIN = path.resolve(__dirname, '../../bin/vm-tenant.js');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the real `vm-tenant` CLI as a user would: a child process with only PATH, HOME (= cwd) and `env`. */
export function runVmTenantCli(args: readonly string[], home: string, env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH, HOME: home, ...env }, cwd: home, timeout: 90_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stdout, stderr });
    });
  });
}
