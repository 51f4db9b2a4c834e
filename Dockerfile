FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md constraints.txt ./
COPY dropin ./dropin
COPY signaling ./signaling
COPY workers ./workers
RUN pip install --no-cache-dir -c constraints.txt .
ENV DROPIN_DATABASE_URL=postgresql+asyncpg://dropin:dropin@postgres/dropin
EXPOSE 8000
CMD ["dropin", "serve", "--host", "0.0.0.0", "--port", "8000"]
