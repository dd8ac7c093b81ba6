"""Deploy: from a trained run to a service on Kubernetes.

Each concept is a module of its own: the image (`container`, `lock`, `start`), the Kubernetes
manifests (`kubernetes`), and what other modules add beside them.
"""
