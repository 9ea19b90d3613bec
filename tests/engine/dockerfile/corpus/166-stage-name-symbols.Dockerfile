FROM alpine AS my-stage_1.0
FROM my-stage_1.0
