/* retry.c - backoff with full jitter and the retry budget (see retry.h). */
#include "retry.h"

double tide_backoff(int attempt, double base, double cap, double r)
{
    if (attempt < 1) attempt = 1;
    double ceil = base;
    for (int i = 1; i < attempt && ceil < cap; i++) ceil *= 2;
    if (ceil > cap) ceil = cap;
    if (r < 0) r = 0;
    if (r >= 1) r = 0.999999;
    return ceil * r;
}

void tide_retry_budget_init(tide_retry_budget *b, double ratio, double max)
{
    b->ratio = ratio < 0 ? 0 : ratio;
    b->max = max < 1 ? 1 : max;
    b->tokens = b->max;
}

void tide_retry_budget_deposit(tide_retry_budget *b)
{
    b->tokens += b->ratio;
    if (b->tokens > b->max) b->tokens = b->max;
}

int tide_retry_budget_withdraw(tide_retry_budget *b)
{
    if (b->tokens < 1 - 1e-9) return 0; /* 5 x 0.2 must buy a retry despite rounding */
    b->tokens -= 1;
    return 1;
}
