# One image for the API, the Temporal worker, the fleet simulator and the one-shot migration;
# docker-compose.yml and deploy/k8s pick the command. Production runs plain `node` on the build
# output (`npm run build`: tsc to dist/ and the workflow bundle made ahead of time), so no
# TypeScript compiler, tsx or webpack runs when a container starts. bin/ comes along: the operator
# commands (`node bin/service-fs.js verify`, `node bin/vm-tenant-events.js`) run the build output
# there, since the image holds no src/ (bin/entry.js). Node 22, the active LTS line (20 is past its end).

# Build stage: all dependencies, compile and bundle.
FROM node:22-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts/build.js scripts/ensure-deps.sh ./scripts/
COPY src ./src
RUN npm run build

# Runtime stage: production dependencies and the build output only, as the non-root `node` user.
FROM node:22-bookworm-slim
WORKDIR /app
# HOST: a container's loopback is reachable from nowhere else, so the API and the metrics
# endpoints listen on every interface of the container (docs/configuration.md).
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    DATA_DIR=/app/.data
COPY package.json package-lock.json .npmrc ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY bin ./bin
# Named volumes mounted on these take their owner from the image: the worker writes its key into
# .data and the public half into checkpoint-public (the API's read-only view of it).
RUN mkdir -p /app/.data /app/checkpoint-public && chown node:node /app/.data /app/checkpoint-public

USER node
EXPOSE 9221 9231
# API by default; the worker, the migration and the fleet simulator override the command.
CMD ["node", "dist/api/server.js"]
