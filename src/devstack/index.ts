export * from './child-process';
export * from './free-port';
export * from './service-checks';
export * from './temporal-binary';
export * from './temporal-dev-server';
export * from './readiness';
export * from './service-env';
export * from './service-process';
