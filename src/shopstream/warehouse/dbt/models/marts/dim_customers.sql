select customer_id, name, email, city, country, segment, signup_at, snapshot_at
from {{ ref('stg_customers') }}
