# The one image every woow process runs from (beat, worker, flower, migrations).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

COPY pyproject.toml README.md ./
COPY woow_scheduler ./woow_scheduler
COPY config ./config
RUN pip install . && useradd --create-home --uid 10001 woow

USER woow
ENV WOOW_CONFIG=""
CMD ["woow", "--help"]
