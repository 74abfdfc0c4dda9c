"""``yujing simulate``: synthetic city streams with injected incidents and their ground truth."""
