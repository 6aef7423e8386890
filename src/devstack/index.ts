export * from './child-process';
export * from './free-port';
export * from './service-checks';
export * from './temporal-binary';
export * from './temporal-dev-server';
