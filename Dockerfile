# The fedchem image: the chart's dataset-registration Job runs it (`python -m fedchem.orchestrator.node.register`),
# and it holds everything fedchem's Substra functions import (the same installs as a function archive's Dockerfile).
# Build it with `make image` (tag ghcr.io/fedchem/fedchem:<package version>, the chart's default). Every step must
# succeed: no install failure is ignored.

FROM python:3.11-slim AS wheel
WORKDIR /src
RUN python -m pip install --no-cache-dir setuptools==84.2.1
COPY pyproject.toml README.md ./
COPY algo algo
COPY opener opener
COPY metrics metrics
COPY orchestrator orchestrator
COPY deploy/helm deploy/helm
COPY deploy/standins deploy/standins
RUN python -m pip wheel --no-cache-dir --no-deps --no-build-isolation --wheel-dir /dist .

FROM python:3.11-slim
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="fedchem" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=wheel /dist /tmp/dist
RUN python -m pip install --no-cache-dir --index-url https://download.pytorch.org/whl/cpu torch==2.13.0 \
 && python -m pip install --no-cache-dir /tmp/dist/fedchem-${VERSION}-py3-none-any.whl \
 && rm -rf /tmp/dist \
 && python -c "import fedchem.orchestrator.node.register, fedchem.algo.functions.train, fedchem.algo.functions.aggregate, fedchem.algo.functions.keys, fedchem.algo.functions.summary"
RUN groupadd --gid 1001 fedchem && useradd --uid 1001 --gid 1001 --create-home --shell /usr/sbin/nologin fedchem
USER 1001:1001
WORKDIR /home/fedchem
ENTRYPOINT ["fedchem"]
CMD ["--help"]
