/** What every vm-tenant process of one stack shares: the services it uses and its identity on them. */
export interface StackSettings {
  databaseUrl: string;
  migrationDatabaseUrl: string;
  natsUrl: string;
  natsStream: string;
  natsSubjectPrefix: string;
  /** Left out when the stack starts its own Temporal (src/devstack/stack.ts fills it in). */
  temporalAddress?: string;
  temporalNamespace?: string;
  taskQueue: string;
  fleetPort: number;
  adminToken: string;
  dataDir: string;
  logLevel: string;
}

/** The environment of a stack's processes (API, worker, fleet simulator) from its settings. */
export function stackEnv(settings: StackSettings, base: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME }): NodeJS.ProcessEnv {
  return {
    ...base,
    DATABASE_URL: settings.databaseUrl,
    MIGRATION_DATABASE_URL: settings.migrationDatabaseUrl,
    NATS_URL: settings.natsUrl,
    NATS_STREAM: settings.natsStream,
    NATS_SUBJECT_PREFIX: settings.natsSubjectPrefix,
    ...(settings.temporalAddress ? { TEMPORAL_ADDRESS: settings.temporalAddress } : {}),
    ...(settings.temporalNamespace ? { TEMPORAL_NAMESPACE: settings.temporalNamespace } : {}),
    TEMPORAL_TASK_QUEUE: settings.taskQueue,
    FLEET_URL: `http://127.0.0.1:${settings.fleetPort}`,
    FLEET_PORT: String(settings.fleetPort),
    ADMIN_TOKEN: settings.adminToken,
    DATA_DIR: settings.dataDir,
    LOG_LEVEL: settings.logLevel,
  };
}
