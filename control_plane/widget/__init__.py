"""The embeddable widget's side of the control plane: publishable keys and their origins."""
