
BoutputJ(–s@Lp¿AE½>çh?1V¾¿R”¾»Ô?ªvÉ=Ý@þßÑ¼