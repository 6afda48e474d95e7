"""The worker pool as the control plane sees it: live workers from heartbeats, lost workers."""
