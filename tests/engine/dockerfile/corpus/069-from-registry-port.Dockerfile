FROM localhost:5000/team/app:1.0 AS app
FROM app
