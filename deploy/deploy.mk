# Deployment targets; filled in by the deployment work (issue 8).
