# DiaChestXR web app: docker build -t diachestxr . && docker run -p 7860:7860 diachestxr
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    GRADIO_SERVER_NAME=0.0.0.0 GRADIO_SERVER_PORT=7860 GRADIO_ANALYTICS_ENABLED=False \
    HF_HOME=/home/app/.cache/huggingface

RUN useradd --create-home --uid 1000 app
WORKDIR /home/app/diachestxr

# CPU-only torch from PyTorch's index (~0.7 GB instead of PyPI's ~5 GB CUDA build), then the
# pinned set the app is tested with; this layer is reused until requirements.txt changes.
COPY requirements.txt .
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.14.1 torchvision==0.29.1 \
 && pip install -r requirements.txt

COPY --chown=app:app . .
RUN pip install --no-deps .

USER app
EXPOSE 7860
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:7860/gradio_api/info', timeout=4)" || exit 1
CMD ["python", "app.py"]
