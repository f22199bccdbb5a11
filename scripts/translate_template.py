#!/usr/bin/env python3
"""Translate a SAM template into plain CloudFormation JSON, offline.

Usage: translate_template.py TEMPLATE OUT_JSON

cfn-lint on a SAM template misses dangling !Refs, undefined ${} in !Sub and bad runtimes;
on the translated CloudFormation it catches them. The translation needs no AWS account:
a fixed region, a managed-policy loader that knows no managed policies, and placeholder
s3:// code URIs instead of the local CodeUri (which `sam build` would upload).
"""

import json
import os
import sys

# samtranslator asks boto3 for the region (to build ARNs); give it one before importing.
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ["AWS_REGION"] = os.environ["AWS_DEFAULT_REGION"]

from samtranslator.model.exceptions import InvalidDocumentException  # noqa: E402
from samtranslator.translator.transform import transform  # noqa: E402
from samtranslator.yaml_helper import yaml_parse  # noqa: E402

PLACEHOLDER_BUCKET = "placeholder-code-bucket"


class NoManagedPolicies:
    """Managed-policy loader for offline use: no managed-policy names are resolved."""

    def load(self):
        return {}


def placeholder_code_uris(template):
    """Replace local CodeUris (in Globals and in each function) with s3:// placeholders."""
    globals_fn = template.get("Globals", {}).get("Function", {})
    if "CodeUri" in globals_fn:
        globals_fn["CodeUri"] = f"s3://{PLACEHOLDER_BUCKET}/globals.zip"
    for name, resource in template.get("Resources", {}).items():
        if resource.get("Type") not in ("AWS::Serverless::Function", "AWS::Serverless::LayerVersion"):
            continue
        props = resource.setdefault("Properties", {})
        key = "ContentUri" if resource["Type"] == "AWS::Serverless::LayerVersion" else "CodeUri"
        if key in props or key in globals_fn:
            props[key] = f"s3://{PLACEHOLDER_BUCKET}/{name}.zip"


def main(argv):
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    src, out = argv[1], argv[2]
    with open(src, encoding="utf-8") as f:
        template = yaml_parse(f.read())
    placeholder_code_uris(template)
    try:
        translated = transform(template, {}, NoManagedPolicies())
    except InvalidDocumentException as e:
        for cause in e.causes:
            print(f"{src}: SAM translation error: {cause.message}", file=sys.stderr)
        return 1
    with open(out, "w", encoding="utf-8") as f:
        json.dump(translated, f, indent=2, sort_keys=True)
        f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
