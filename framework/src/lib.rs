//! lambda-stage: typed, environment-aware AWS Lambda handlers.
