# One image for the API, the Temporal worker, the fleet simulator and the one-shot
# migration; docker-compose.yml picks the command. TypeScript runs through tsx (a
# runtime dependency), so there is no separate compile step; the workflow bundle is
# built once here so that workers start without webpack.
FROM node:20-bookworm-slim

WORKDIR /app
ENV NODE_ENV=production \
    DATA_DIR=/app/.data

COPY package.json package-lock.json .npmrc ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

COPY tsconfig.json ./
COPY src ./src
RUN node --import tsx src/workers/workflow-bundle.ts dist/workflow-bundle.js \
 && mkdir -p /app/.data \
 && chown -R node:node /app/.data /app/dist

USER node
EXPOSE 9221 9231
# API by default; the worker and the fleet simulator override the command.
CMD ["node", "--import", "tsx", "src/api/server.ts"]
