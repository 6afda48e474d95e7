"""Call recordings: the stored files (a local folder or an S3-compatible bucket), their rows,
short-lived signed URLs for the console's player, and the retention sweep."""
