{# Sorting: a click on a header sorts the body rows by that column
   (numbers by data-v, text otherwise); a second click reverses.  The
   sort is stable, so sorting by directory, then by coverage, keeps
   directories grouped.  Inlined into every page. #}
function kcovSort(th){
 var t=th.closest('table'),b=t.tBodies[0],i=Array.prototype.indexOf.call(th.parentNode.children,th);
 var asc=th.getAttribute('data-dir')!=='asc';
 t.querySelectorAll('thead th').forEach(function(h){h.removeAttribute('data-dir')});
 th.setAttribute('data-dir',asc?'asc':'desc');
 function key(r){var c=r.cells[i],v=c.getAttribute('data-v');return v!==null?parseFloat(v):c.textContent.toLowerCase()}
 var rows=Array.prototype.slice.call(b.rows).map(function(r,n){return [key(r),n,r]});
 rows.sort(function(x,y){var d=x[0]<y[0]?-1:x[0]>y[0]?1:0;return (asc?d:-d)||x[1]-y[1]});
 rows.forEach(function(x){b.appendChild(x[2])});
}
document.querySelectorAll('table.sortable thead th').forEach(function(th){
 th.addEventListener('click',function(){kcovSort(th)});
});
