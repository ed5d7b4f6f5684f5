"""The workflow engine: runs a workflow's steps through pluggable task strategies."""
