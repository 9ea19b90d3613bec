FROM    alpine:3    AS    spaced   
