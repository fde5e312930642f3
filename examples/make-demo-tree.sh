#!/bin/bash
# make-demo-tree.sh DIR - a small model-bin tree to try hfmirror with:
#   DIR/demo-org/tiny-model             a model repo, with a ~100 MB LFS file
#   DIR/datasets/demo-org/tiny-dataset  a dataset repo
# The content is deterministic (the same bytes on every machine), and a tree
# that is already complete is left alone, so its ids stay the same and
# clients' caches stay valid across runs.
set -eu

[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
DIR=$1
MODEL="$DIR/demo-org/tiny-model"
DATASET="$DIR/datasets/demo-org/tiny-dataset"
STAMP="$DIR/.hfmirror-demo-complete" # names starting .hfmirror are not served
WEIGHTS_BYTES=$((100 * 1000 * 1000))

# det_bytes SEED N: N pseudo-random bytes that depend only on SEED (AES-CTR
# over zeros).  Without the openssl tool, random bytes will do: the demo
# works the same, only the ids differ between machines.
det_bytes() {
	if command -v openssl >/dev/null 2>&1; then
		key=$(printf '%s' "$1" | sha256sum | cut -c1-64)
		openssl enc -aes-256-ctr -K "$key" -iv 00000000000000000000000000000000 \
			-in /dev/zero 2>/dev/null | head -c "$2"
	else
		head -c "$2" /dev/urandom
	fi
}

# put FILE: write stdin to FILE through a temporary name, so an interrupted
# run never leaves a truncated file under the final name.
put() {
	mkdir -p "$(dirname "$1")"
	cat >"$1.tmp.$$"
	mv "$1.tmp.$$" "$1"
}

make_model() {
	printf '*.safetensors filter=lfs diff=lfs merge=lfs -text\n' | put "$MODEL/.gitattributes"
	cat <<'JSON' | put "$MODEL/config.json"
{
  "architectures": ["TinyForCausalLM"],
  "model_type": "tiny",
  "hidden_size": 64,
  "num_attention_heads": 4,
  "num_hidden_layers": 2,
  "vocab_size": 256,
  "torch_dtype": "float32"
}
JSON
	cat <<'JSON' | put "$MODEL/generation_config.json"
{
  "bos_token_id": 1,
  "eos_token_id": 2,
  "max_new_tokens": 32
}
JSON
	cat <<'JSON' | put "$MODEL/tokenizer_config.json"
{
  "tokenizer_class": "PreTrainedTokenizerFast",
  "bos_token": "<s>",
  "eos_token": "</s>",
  "model_max_length": 512
}
JSON
	# a byte-level vocabulary: 256 entries, generated rather than spelled out
	{
		printf '{\n  "version": "1.0",\n  "model": {\n    "type": "WordLevel",\n    "vocab": {\n'
		i=0
		while [ $i -lt 256 ]; do
			sep=,
			[ $i -eq 255 ] && sep=
			printf '      "<0x%02X>": %d%s\n' $i $i "$sep"
			i=$((i + 1))
		done
		printf '    },\n    "unk_token": "<0x00>"\n  }\n}\n'
	} | put "$MODEL/tokenizer.json"
	cat <<'MD' | put "$MODEL/README.md"
---
license: mit
library_name: transformers
pipeline_tag: text-generation
tags:
  - demo
  - hfmirror
---

# tiny-model

A demo repository served by hfmirror from a plain directory.
The weights are random bytes: this model only exists to be downloaded.
MD
	printf 'Evaluation notes live in a nested folder to show nested paths.\n' |
		put "$MODEL/docs/eval/notes.md"
	det_bytes hfmirror-demo-weights "$WEIGHTS_BYTES" | put "$MODEL/model.safetensors"
}

make_dataset() {
	cat <<'MD' | put "$DATASET/README.md"
---
license: cc0-1.0
task_categories:
  - text-classification
configs:
  - config_name: default
    data_files:
      - split: train
        path: data/train-00000-of-00001.csv
---

# tiny-dataset

A demo dataset served by hfmirror.
MD
	{
		echo "id,text,label"
		i=1
		while [ $i -le 200 ]; do
			echo "$i,sample sentence number $i,$((i % 2))"
			i=$((i + 1))
		done
	} | put "$DATASET/data/train-00000-of-00001.csv"
	# parquet-like: the magic at both ends around opaque bytes (binary, so LFS)
	{ printf 'PAR1'; det_bytes hfmirror-demo-parquet 65536; printf 'PAR1'; } |
		put "$DATASET/data/train-00000-of-00001.parquet"
}

if [ -f "$STAMP" ]; then
	echo "demo tree already in $DIR"
	exit 0
fi
mkdir -p "$DIR"
echo "writing the demo tree to $DIR (a 100 MB weights file takes a few seconds)"
make_model
make_dataset
date -u +%Y-%m-%dT%H:%M:%SZ >"$STAMP"
echo "demo tree ready in $DIR"
