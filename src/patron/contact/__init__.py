"""The contact stage: the consent and preference ledgers, the contact policy and planner, and the measured effect of contact (lift, uplift, dose-response).

May import relationship, value, people, data and the kernel (see docs/architecture.md).
"""
