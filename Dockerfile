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

# Everything the services write belongs to the image's user: Airflow's home and task logs (a
# volume shared with the API server, which shows them in the UI), DossierHub's working folder,
# and the Finance drop folder (a named volume takes its owner from here when first created).
RUN useradd --create-home --uid 50000 dossierhub \
    && mkdir -p /opt/airflow/logs /opt/dossierhub/var /data/finance \
    && chown -R dossierhub /opt/airflow /opt/dossierhub/var /data
USER dossierhub
