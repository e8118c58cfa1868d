# Runs in the worker's venv: prints nst_core.stylize()'s options (default, choices) as JSON, so
# that the batch test inside GIMP can compare them with the procedure's arguments.
import json

from nst_core.api import STRENGTH_MAX, choices, options

out = {}
for name, param in options().items():
    if isinstance(param.default, (bool, int, float, str)):
        out[name.replace('_', '-')] = {'default': param.default, 'choices': choices(name)}
out['strength']['range'] = [0.0, STRENGTH_MAX]
print(json.dumps(out, indent=1))
