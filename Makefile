# The two set-up commands of the README, and what they need.
#   make demo   broker, worker, dispatch, tracking and the simulator; a scene played through
#   make test   lint, rule checks, unit, rule-file and end-to-end tests (starts its own broker)
#   make quick  the tests without the broker and without the simulated-city runs (under a minute)

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test quick lint rules-check tools clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Prometheus and promtool (monitoring checks and the monitoring end-to-end test),
# docker-compose (validates docker-compose.yml; no Docker engine needed) and chromium (the
# console's browser tests, driven by Playwright; with a Chinese and an emoji font, so their
# screenshots show the console's text), from Debian's packages when missing.
tools:
	@command -v promtool >/dev/null && command -v prometheus >/dev/null && \
	  command -v docker-compose >/dev/null || { \
	  echo "installing Prometheus and docker-compose from Debian's packages"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq prometheus docker-compose; }
	@test -x /usr/bin/chromium && test -d /usr/share/fonts/truetype/wqy || { \
	  echo "installing chromium and its fonts from Debian's packages"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq chromium fonts-wqy-zenhei fonts-noto-color-emoji; }

demo: $(STAMP)
	$(BIN)/yujing demo

lint: $(STAMP)
	$(BIN)/ruff check .

rules-check: $(STAMP)
	$(BIN)/yujing validate rules/
	$(BIN)/yujing test rules/
	$(BIN)/yujing dispatch check rules/routing/routes.yaml

test: tools lint rules-check
	$(BIN)/python -m pytest

quick: $(STAMP) tools
	$(BIN)/python -m pytest -m "not broker and not slow"

clean:
	-$(BIN)/yujing broker stop
	rm -rf $(VENV) .yujing .pytest_cache .ruff_cache
