# syntax=docker/dockerfile:1
# sidecache container image: docker build -t sidecache .
# Runs as a non-root user, reads /etc/sidecache/config.yaml (deploy/container.yaml), keeps its
# interception CA in the /var/lib/sidecache/ca volume. Running it: docs/RUNNING.md.

# ---- build: src/ bundled into dist/ (build.mjs, esbuild) with the dev dependencies -----------
FROM node:22-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: the `prepare` script builds, and the sources are not copied yet.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json build.mjs ./
COPY src ./src
RUN npm run build

# ---- runtime: production dependencies and the compiled code only -----------------------------
FROM node:22-bookworm-slim
# MALLOC_ARENA_MAX=1: one glibc malloc arena for every thread; cache bodies and the freed memory
# of V8's helper threads share it instead of sitting in per-thread arenas (docs/ARCHITECTURE.md,
# "Memory": peaks 8-15 MiB lower with a 32 MiB cache). The CLI's launcher line sets it too.
ENV NODE_ENV=production \
    MALLOC_ARENA_MAX=1
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` (the build) cannot run without dev dependencies; dist/ comes from `build`.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
# The embedded default configuration (config/default.yaml) is resolved relative to dist/.
COPY config ./config
COPY deploy/container.yaml /etc/sidecache/config.yaml

# The interception CA (ca.pem, ca-key.pem) lives here; a volume keeps it across restarts, so the
# clients that trust it keep working. SIDECACHE_CA_DIR is read by the TLS interception feature.
RUN mkdir -p /var/lib/sidecache/ca && chown -R 1000:1000 /var/lib/sidecache
ENV SIDECACHE_CONFIG=/etc/sidecache/config.yaml \
    SIDECACHE_CA_DIR=/var/lib/sidecache/ca
VOLUME ["/var/lib/sidecache/ca"]

# The image's `node` user, by number so that Kubernetes' runAsNonRoot can verify it.
USER 1000:1000

# 8080: the proxy; 9090: admin (/healthz, /readyz, /metrics).
EXPOSE 8080 9090

# Slim images have no curl: node's fetch probes the admin listener. SIDECACHE_HEALTHCHECK_URL
# overrides the URL when the admin listener is moved.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch(process.env.SIDECACHE_HEALTHCHECK_URL||'http://127.0.0.1:9090/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]

# On SIGTERM sidecache stops accepting, lets in-flight requests finish within shutdown.graceMs
# (10 s by default) and exits 0. Give it longer than that: `docker stop -t 15`, compose
# `stop_grace_period: 15s`, Kubernetes `terminationGracePeriodSeconds: 15`.
# node runs as PID 1 and handles SIGTERM and SIGINT itself.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "--max-semi-space-size=1", "--optimize-for-size", "--liftoff-only", "--no-allocation-site-pretenuring", "--no-concurrent-recompilation", "/app/dist/cli.js"]
CMD ["serve"]
