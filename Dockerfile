# The same install as `make`: the pinned, hashed lock file.
FROM python:3.11-slim
WORKDIR /app
ENV PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# Where pip finds the packages: PyPI unless the build is given a mirror (docker-compose.yml
# passes these from the environment when they are set). They stay in the image's history:
# never put a password in them.
ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
ARG PIP_TRUSTED_HOST
ARG PIP_DEFAULT_TIMEOUT
COPY requirements.lock pyproject.toml ./
RUN python -m pip install --no-cache-dir --require-hashes -r requirements.lock
COPY . .
ENV HOST=0.0.0.0 PORT=8000 RT_DATA_DIR=/data
EXPOSE 8000
# The entry point finds the `ha` profile's Sentinels (deploy/topology.py).
ENTRYPOINT ["python", "deploy/topology.py"]
CMD ["python", "-m", "config.serve"]
