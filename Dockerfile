# yujing's processes (worker, dispatch, track, simulate, create-topics, …) in one image; the
# command is a `yujing` subcommand. Used by docker-compose.yml; Kafka has its own image there.
FROM python:3.11-slim
WORKDIR /opt/yujing
COPY pyproject.toml README.md ./
COPY engine engine
COPY models models
COPY topics topics
COPY simulator simulator
COPY rules rules
# Editable: the rule folder, the routing file and the reference data are read from here.
# tzdata: the city's zone (Asia/Shanghai) on an image without the system's zone files.
RUN pip install --no-cache-dir -e . tzdata \
    && mkdir -p /opt/yujing/.yujing && chown nobody /opt/yujing/.yujing
# The worker keeps its Faust data under .yujing/ (the only place the image writes).
USER nobody
ENTRYPOINT ["yujing"]
CMD ["--help"]
