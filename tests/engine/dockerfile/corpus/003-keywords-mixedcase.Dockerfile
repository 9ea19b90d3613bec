FrOm alpine AS Base
RuN echo hi
CoPy a b
EnV A=1
LaBeL x=y
