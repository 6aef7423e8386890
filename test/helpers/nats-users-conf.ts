import { readFileSync } from 'node:fs';
import path from 'node:path';

/** The NATS users of the deployments: docker-compose.production.yml mounts it, Kubernetes includes it (docs/deploy.md). */
export const NATS_USERS_FILE = path.resolve(__dirname, '../../docker/nats/vm-tenant-users.conf');

/**
 * The users of a NATS `authorization { users = [...] }` file as written in docker/nats: each
 * `{ user, password, permissions: { publish: { allow, deny } } }`, read for the rules the unit
 * tests check. test/integration/nats-credentials.test.ts runs a real server with the same file.
 */
export function natsUsers(text: string): Record<string, { password: string; allow: string[]; deny: string[] }> {
  const code = text.replace(/#.*$/gm, '');
  const list = (block: string, name: string) =>
    [...(new RegExp(`${name}:\\s*\\[([^\\]]*)\\]`).exec(block)?.[1] ?? '').matchAll(/"([^"]+)"/g)].map((m) => m[1]!);
  return Object.fromEntries(
    code
      .split(/\buser:\s*/)
      .slice(1)
      .map((block) => {
        const publish = /publish:\s*\{([^}]*)\}/.exec(block)?.[1] ?? '';
        return [
          /^(\S+)/.exec(block)![1]!,
          { password: /password:\s*(\S+)/.exec(block)?.[1] ?? '', allow: list(publish, 'allow'), deny: list(publish, 'deny') },
        ];
      }),
  );
}

export const deploymentNatsUsers = () => natsUsers(readFileSync(NATS_USERS_FILE, 'utf8'));
