# Sourced by the scripts that run `sam build`: it needs the Lambda runtime's interpreter
# (python3.12) on PATH. A pyenv shim may exist without being callable, so test it by running it
# and fall back to pyenv's installed versions.
if ! python3.12 --version >/dev/null 2>&1; then
  for dir in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.12.*/bin /root/.pyenv/versions/3.12.*/bin; do
    if [[ -x "$dir/python3.12" ]]; then
      export PATH="$dir:$PATH"
      break
    fi
  done
fi
python3.12 --version >/dev/null 2>&1 || { echo "python3.12 not found (sam build needs the Lambda runtime's Python)" >&2; exit 1; }
