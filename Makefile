# lightglue_ros: `make demo` and `make test` are the quick start; both run `make setup` first.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.setup-stamp
MODELS ?= models/aliked
# ROS 2 Kilted wheels on PyPI are built for CPython 3.11.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
ROS_WHEELS := ros-rclpy[fastrtps] ros-std-msgs ros-sensor-msgs ros-geometry-msgs \
	ros-diagnostic-msgs ros-lifecycle-msgs
# The ament linters that `ros2 pkg create` tests with (a ROS install has them already).
ROS_TEST_WHEELS := ros-ament-flake8 ros-ament-pep257
# Real launch / launch_ros / launch_testing / ros2 CLI / message_filters for the tests, which
# PyPI lacks: installed from ../shared/ros2-python when it is beside the repository.
ROS2_PYTHON := $(wildcard ../shared/ros2-python/install.sh)
LINT := flake8 flake8-blind-except flake8-builtins flake8-class-newline \
	flake8-comprehensions flake8-deprecated flake8-docstrings flake8-import-order \
	flake8-quotes pydocstyle

.PHONY: setup demo test lint clean

setup: $(STAMP)

$(STAMP): setup.py constraints.txt Makefile $(ROS2_PYTHON)
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), sys.version' || \
		{ echo "error: Python 3.11+ is needed (found $(PYTHON))"; exit 1; }
	@free=$$(df -Pk . | awk 'NR == 2 {print int($$4 / 1048576)}'); \
	if [ "$${free:-99}" -lt 10 ]; then \
		echo "warning: $$free GB free here; the environment takes ~8 GB (PyTorch from PyPI" \
			"brings its CUDA libraries) and the tests ~2 GB of temporary files"; \
	fi
	@if [ -n "$$ROS_DISTRO" ] && $(PYTHON) -c 'import rclpy' 2>/dev/null; then \
		echo "using the sourced ROS 2 $$ROS_DISTRO install"; \
		$(PYTHON) -m venv --system-site-packages $(VENV); \
		echo "" > $(VENV)/.ros-wheels; \
	else \
		$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11)' || \
			{ echo "error: the ROS 2 wheels from PyPI need CPython 3.11; install python3.11 or source a ROS 2 install"; exit 1; }; \
		$(PYTHON) -m venv $(VENV); \
		echo "$(ROS_WHEELS) $(ROS_TEST_WHEELS)" > $(VENV)/.ros-wheels; \
	fi
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet -c constraints.txt -e '.[runtime,convert,test]' \
		$$(cat $(VENV)/.ros-wheels) $(LINT)
	@if [ -z "$(ROS2_PYTHON)" ]; then \
		echo "note: ../shared/ros2-python is not beside the repository: the ros2 launch /" \
			"message_filters / launch_testing tests will skip (fail under CI)"; \
	elif [ -s $(VENV)/.ros-wheels ]; then \
		bash $(ROS2_PYTHON) $(PY); \
	fi
	@touch $(STAMP)

demo: setup
	$(VENV)/bin/lightglue-ros demo --models $(MODELS)

test: setup
	$(PY) -m pytest test -ra

lint: setup
	$(VENV)/bin/flake8 lightglue_ros test launch setup.py

clean:
	rm -rf $(VENV) models demo_out .cache build install log *.egg-info
