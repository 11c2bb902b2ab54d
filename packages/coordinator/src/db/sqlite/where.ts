// The filters of list calls as one WHERE clause, the same for every noun that lists with filters.

/** `WHERE …` of the `always` conditions and of each in `when` whose parameter is given; '' when there is none. */
export function whereClause(params: Record<string, unknown>, when: Record<string, string>, always: readonly string[] = []): string {
  const where = [...always, ...Object.entries(when).filter(([name]) => params[name]).map(([, condition]) => condition)];
  return where.length ? `WHERE ${where.join(' AND ')}` : '';
}
