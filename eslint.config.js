import neostandard from 'neostandard'

export default [
  ...neostandard({ ts: true, ignores: ['dist/**', 'coverage/**', '.tap/**', 'client/dist/**', 'client/src/api.ts'] }),
  {
    rules: {
      // TypeBox's idiom names a schema and its static type alike; tsc already rejects real redeclarations.
      '@typescript-eslint/no-redeclare': 'off',
    },
  },
]
