# One image for the Airflow services, the reference systems and the DossierHub API.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    AIRFLOW_HOME=/opt/airflow

WORKDIR /opt/dossierhub
COPY pyproject.toml README.md ./
COPY connectors ./connectors
COPY models ./models
COPY dossierhub ./dossierhub
COPY simulators ./simulators
RUN pip install --no-cache-dir '.[airflow]'
COPY dags /opt/airflow/dags

RUN useradd --create-home --uid 50000 dossierhub && mkdir -p /opt/airflow /data \
    && chown -R dossierhub /opt/airflow /data
USER dossierhub
