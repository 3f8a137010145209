/* retry.h - retry pacing: exponential backoff with full jitter, and a retry budget (a token
 * bucket that lets retries be at most a share of recent calls). Pure. */
#ifndef TIDE_RETRY_H
#define TIDE_RETRY_H

/* Delay before retry number `attempt` (1 = first retry): uniform in [0, min(cap, base*2^(a-1))].
 * r is a uniform random number in [0, 1). */
double tide_backoff(int attempt, double base, double cap, double r);

typedef struct tide_retry_budget {
    double tokens;
    double ratio; /* tokens earned per call: retries may be this share of calls */
    double max;   /* bucket size (also the burst of retries allowed) */
} tide_retry_budget;

void tide_retry_budget_init(tide_retry_budget *b, double ratio, double max);
/* Every call (first attempts only) earns ratio tokens. */
void tide_retry_budget_deposit(tide_retry_budget *b);
/* Takes one token for a retry; returns 1 if granted, 0 when the budget is spent. */
int tide_retry_budget_withdraw(tide_retry_budget *b);

#endif
