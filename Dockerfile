# API replica image: compiled TypeScript on Node 24 LTS, no dev dependencies.
# test/integration/image.test.ts stages the last stage from these very lines, without Docker, and
# starts it: what a COPY leaves out fails that test.
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM node:24-bookworm-slim
ENV NODE_ENV=production HOST=0.0.0.0 PORT=4000
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
COPY --from=build /app/dist ./dist
# The dashboard's page (src/http/dashboard.ts looks for public/dashboard above the code).
COPY public ./public
# Shipped datasets for the REPLAY scenario (src/simulator/datasets.ts).
COPY datasets ./datasets
USER node
EXPOSE 4000
# Ready, not just alive: the replica serves only once Kafka, the store and Redis answer.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s CMD node -e "fetch('http://127.0.0.1:4000/readyz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
CMD ["node", "dist/src/main.js"]
