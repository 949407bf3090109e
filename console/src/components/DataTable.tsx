// A scrolling data table with a header row of column headers.
import type { ComponentChildren } from 'preact'

/** A column header: its label, or the label and whether the column holds numbers (right-aligned). */
export type Column = string | { label: string; num?: boolean }

/** A header row; `false` entries (e.g. `canEdit && 'Actions'`) are left out. */
export function TableHead({ columns }: { columns: readonly (Column | false)[] }) {
  return (
    <thead>
      <tr>
        {columns.map((column, index) => {
          if (column === false) return null
          const { label, num } = typeof column === 'string' ? { label: column, num: false } : column
          return (
            <th key={index} scope="col" class={num ? 'num' : undefined}>
              {label}
            </th>
          )
        })}
      </tr>
    </thead>
  )
}

/** A table in its `table-wrap` box: a header row from `columns`, `children` as the body rows, `footer` after the table. */
export function DataTable({
  columns,
  children,
  caption,
  card = false,
  busy,
  footer
}: {
  columns: readonly (Column | false)[]
  children: ComponentChildren
  /** A caption for screen readers only. */
  caption?: string
  /** Draw the box as a card. */
  card?: boolean
  busy?: boolean
  footer?: ComponentChildren
}) {
  return (
    <div class={card ? 'card table-wrap' : 'table-wrap'}>
      <table aria-busy={busy}>
        {caption && <caption class="visually-hidden">{caption}</caption>}
        <TableHead columns={columns} />
        <tbody>{children}</tbody>
      </table>
      {footer}
    </div>
  )
}
