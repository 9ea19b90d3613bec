FROM maven:3-eclipse-temurin-21 AS build
COPY pom.xml .
RUN mvn -B dependency:go-offline
COPY src ./src
RUN mvn -B package -DskipTests

FROM eclipse-temurin:21-jre
COPY --from=build target/*.jar /app.jar
ENTRYPOINT ["java","-jar","/app.jar"]
