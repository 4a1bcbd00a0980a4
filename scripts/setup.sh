#!/usr/bin/env bash
# Installs the tools tern drives: Verilator (simulation), Icarus Verilog (second
# simulator in tests), Yosys (synthesis) and a C++ compiler for Verilated models.
# Debian/Ubuntu; idempotent: installs only what is missing. Runs apt-get as root,
# or through sudo when not root.
set -euo pipefail

missing=()
for tool in verilator:verilator iverilog:iverilog vvp:iverilog yosys:yosys g++:g++ make:make; do
    command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool##*:}")
done

if ((${#missing[@]})); then
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    mapfile -t packages < <(printf '%s\n' "${missing[@]}" | sort -u)
    echo "tern setup: installing ${packages[*]}" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
    echo "tern setup: cargo (Rust) is required; install it with rustup" >&2
    exit 1
fi
echo "tern setup: $(verilator --version | head -n1); $(yosys -V | head -n1); $(iverilog -V 2>&1 | head -n1)" >&2
