"""The people stage: identity resolution and data rights (export and erasure).

May import the data stage and the kernel (see docs/architecture.md).
"""
